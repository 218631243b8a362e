//! A subset of Exchange OPATH for `-Filter`: `Property -eq|-ne|-like|-notlike 'value'`,
//! `$true`/`$false`/`$null`, `-and`, `-or`, `-not`, parentheses. Evaluated over a cmdlet's
//! output object (property names are case-insensitive, strings compare case-insensitively).

use serde_json::Value;

use super::CmdletError;

#[derive(Debug, Clone)]
pub enum Filter {
    Cmp {
        prop: String,
        op: Op,
        value: Option<String>,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Like,
    NotLike,
}

fn syntax(filter: &str, why: &str) -> CmdletError {
    CmdletError::new(
        "System.Management.Automation.ParameterBindingException",
        format!(
            "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"Invalid filter syntax. For a description of the filter parameter syntax see the command help. \"{filter}\" ({why})\""
        ),
    )
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
}

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
        } else if c == '(' {
            it.next();
            out.push(Tok::Open);
        } else if c == ')' {
            it.next();
            out.push(Tok::Close);
        } else if c == '\'' || c == '"' {
            it.next();
            let mut v = String::new();
            loop {
                match it.next() {
                    Some(x) if x == c => {
                        // Doubled quote = escaped quote.
                        if it.peek() == Some(&c) {
                            it.next();
                            v.push(c);
                        } else {
                            break;
                        }
                    }
                    Some(x) => v.push(x),
                    None => return Err("unterminated string".into()),
                }
            }
            out.push(Tok::Str(v));
        } else {
            let mut w = String::new();
            while let Some(&x) = it.peek() {
                if x.is_whitespace() || x == '(' || x == ')' {
                    break;
                }
                w.push(x);
                it.next();
            }
            out.push(Tok::Word(w));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_word("-or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.peek_word("-and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_word("-not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let f = self.or()?;
            if self.toks.get(self.pos) != Some(&Tok::Close) {
                return Err("missing ')'".into());
            }
            self.pos += 1;
            return Ok(f);
        }
        let Some(Tok::Word(prop)) = self.toks.get(self.pos).cloned() else {
            return Err("expected a property name".into());
        };
        let Some(Tok::Word(op)) = self.toks.get(self.pos + 1).cloned() else {
            return Err("expected an operator".into());
        };
        let op = match op.to_ascii_lowercase().as_str() {
            "-eq" => Op::Eq,
            "-ne" => Op::Ne,
            "-like" => Op::Like,
            "-notlike" => Op::NotLike,
            other => return Err(format!("unsupported operator '{other}'")),
        };
        let value = match self.toks.get(self.pos + 2).cloned() {
            Some(Tok::Str(s)) => Some(s),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("$null") => None,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("$true") => Some("True".into()),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("$false") => Some("False".into()),
            Some(Tok::Word(w)) => Some(w),
            _ => return Err("expected a value".into()),
        };
        self.pos += 3;
        Ok(Filter::Cmp { prop, op, value })
    }
}

pub fn parse(filter: &str) -> Result<Filter, CmdletError> {
    let toks = tokens(filter).map_err(|w| syntax(filter, &w))?;
    let mut p = Parser { toks, pos: 0 };
    let f = p.or().map_err(|w| syntax(filter, &w))?;
    if p.pos != p.toks.len() {
        return Err(syntax(filter, "unexpected trailing input"));
    }
    Ok(f)
}

fn like(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let s: Vec<char> = s.to_lowercase().chars().collect();
    // Classic wildcard match with '*' only.
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn values_of(v: &Value) -> Vec<Option<String>> {
    match v {
        Value::Null => vec![None],
        Value::String(s) => vec![Some(s.clone())],
        Value::Bool(b) => vec![Some(if *b { "True".into() } else { "False".into() })],
        Value::Array(a) if a.is_empty() => vec![None],
        Value::Array(a) => a.iter().flat_map(values_of).collect(),
        other => vec![Some(other.to_string())],
    }
}

/// Unknown properties are an error, as in Exchange.
pub fn check_props(f: &Filter, sample: &Value) -> Result<(), CmdletError> {
    match f {
        Filter::Cmp { prop, .. } => {
            let known = sample
                .as_object()
                .is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(prop)));
            if known {
                Ok(())
            } else {
                Err(CmdletError::new(
                    "Microsoft.Exchange.Management.Tasks.InvalidFilterException",
                    format!("The filter property '{prop}' isn't supported by this cmdlet."),
                ))
            }
        }
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_props(a, sample)?;
            check_props(b, sample)
        }
        Filter::Not(a) => check_props(a, sample),
    }
}

pub fn eval(f: &Filter, obj: &Value) -> bool {
    match f {
        Filter::Cmp { prop, op, value } => {
            let field = obj
                .as_object()
                .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(prop)))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            let vals = values_of(&field);
            let hit = |x: &Option<String>| match (op, value, x) {
                (Op::Eq | Op::Ne, None, x) => x.is_none(),
                (_, Some(_), None) => false,
                (Op::Eq | Op::Ne, Some(v), Some(x)) => v.eq_ignore_ascii_case(x),
                (Op::Like | Op::NotLike, Some(v), Some(x)) => like(v, x),
                (Op::Like | Op::NotLike, None, x) => x.is_none(),
            };
            let any = vals.iter().any(hit);
            match op {
                Op::Eq | Op::Like => any,
                Op::Ne | Op::NotLike => !any,
            }
        }
        Filter::And(a, b) => eval(a, obj) && eval(b, obj),
        Filter::Or(a, b) => eval(a, obj) || eval(b, obj),
        Filter::Not(a) => !eval(a, obj),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(f: &str, v: &Value) -> bool {
        parse(f).map(|f| eval(&f, v)).unwrap_or(false)
    }

    #[test]
    fn opath_subset() {
        let v = json!({"RecipientTypeDetails": "UserMailbox", "LitigationHoldEnabled": true,
                       "EmailAddresses": ["SMTP:a@c.com", "x500:/o=x"], "ArchiveName": []});
        assert!(m("RecipientTypeDetails -eq 'UserMailbox'", &v));
        assert!(m(
            "recipienttypedetails -eq \"usermailbox\" -and LitigationHoldEnabled -eq $true",
            &v
        ));
        assert!(m("EmailAddresses -like 'x500:*'", &v));
        assert!(m(
            "-not (RecipientTypeDetails -eq 'SharedMailbox') -or 1 -eq 2",
            &v
        ));
        assert!(m("ArchiveName -eq $null", &v));
        assert!(!m("EmailAddresses -notlike '*@c.com'", &v));
        assert!(parse("RecipientTypeDetails -gt 'x'").is_err());
        assert!(parse("(A -eq 'b'").is_err());
        assert!(parse("A -eq 'b").is_err());
    }
}
