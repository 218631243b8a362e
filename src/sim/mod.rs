//! Microsoft 365 tenant simulator (test and demo infrastructure). See issue "Microsoft 365 tenant simulator".
