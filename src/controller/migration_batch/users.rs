//! The batch's user list: inline, or Exchange's CSV form in a ConfigMap.

use crate::api::BatchUser;

/// Parses the CSV form: header `EmailAddress` (target) plus `SourceEmailAddress`, optional
/// `UserPrincipalName`, `Alias`, `DisplayName` (case-insensitive, any order).
pub fn parse_csv(text: &str) -> Result<Vec<BatchUser>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = lines.next().ok_or(
        "the CSV is empty: it needs a header line with EmailAddress and SourceEmailAddress",
    )?;
    let cols: Vec<String> = split(header)
        .into_iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let idx = |name: &str| cols.iter().position(|c| c == name);
    let target = idx("emailaddress")
        .ok_or("the CSV header lacks EmailAddress (the target address, as Exchange expects)")?;
    let source = idx("sourceemailaddress")
        .ok_or("the CSV header lacks SourceEmailAddress (the mailbox in the source tenant)")?;
    let (upn, alias, display) = (idx("userprincipalname"), idx("alias"), idx("displayname"));
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let f = split(line);
        let get = |i: Option<usize>| {
            i.and_then(|i| f.get(i))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let (Some(t), Some(s)) = (get(Some(target)), get(Some(source))) else {
            return Err(format!(
                "CSV line {} lacks EmailAddress or SourceEmailAddress",
                n + 2
            ));
        };
        out.push(BatchUser {
            source: s,
            target: t,
            user_principal_name: get(upn),
            alias: get(alias),
            display_name: get(display),
        });
    }
    if out.is_empty() {
        return Err("the CSV lists no users".into());
    }
    Ok(out)
}

/// Splits one CSV line, honouring double quotes.
fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Checks the rules the schema cannot: unique source and target addresses, at most 2,000 users,
/// address lengths.
pub fn validate(users: &[BatchUser]) -> Result<(), String> {
    if users.len() > crate::api::MAX_USERS_PER_BATCH {
        return Err(format!(
            "{} users: a batch holds at most 2,000 (the Exchange limit); split it",
            users.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut seen_t = std::collections::HashSet::new();
    for u in users {
        for a in [&u.source, &u.target] {
            if a.len() > crate::api::MAX_ADDRESS_LEN || !a.contains('@') {
                return Err(format!(
                    "{a:?} is not an SMTP address of at most 128 characters"
                ));
            }
        }
        if !seen.insert(u.source.to_ascii_lowercase()) {
            return Err(format!("{} is listed twice", u.source));
        }
        if !seen_t.insert(u.target.to_ascii_lowercase()) {
            return Err(format!("target {} is listed twice", u.target));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_exchange_csv_with_extra_columns() {
        let csv = "EmailAddress,SourceEmailAddress,DisplayName\r\nlara@fabrikam.com,lara@contoso.com,\"Newton, Lara\"\r\n\r\nbob@fabrikam.com,bob@contoso.com,\n";
        let u = parse_csv(csv).expect("csv");
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].target, "lara@fabrikam.com");
        assert_eq!(u[0].source, "lara@contoso.com");
        assert_eq!(u[0].display_name.as_deref(), Some("Newton, Lara"));
        assert_eq!(u[1].display_name, None);
    }

    #[test]
    fn bad_csv_is_explained() {
        assert!(parse_csv("").unwrap_err().contains("empty"));
        assert!(
            parse_csv("EmailAddress\nx@y.com")
                .unwrap_err()
                .contains("SourceEmailAddress")
        );
        assert!(
            parse_csv("SourceEmailAddress,EmailAddress\n,x@y.com")
                .unwrap_err()
                .contains("line 2")
        );
    }

    #[test]
    fn duplicates_are_rejected() {
        let u = |s: &str, t: &str| BatchUser {
            source: s.into(),
            target: t.into(),
            ..Default::default()
        };
        assert!(
            validate(&[u("a@c.com", "a@f.com"), u("A@c.com", "b@f.com")])
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            validate(&[u("a@c.com", "a@f.com"), u("b@c.com", "a@f.com")])
                .unwrap_err()
                .contains("twice")
        );
        assert!(validate(&[u("a@c.com", "a@f.com")]).is_ok());
    }
}
