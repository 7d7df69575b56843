//! How long purchased credits stay valid, per package (credits expire; the
//! validity is fixed on the order when it is created).
//!
//! Configured as `CREDIT_VALIDITY_DAYS=pro=365,vip=365`; a package not named
//! grants credits that never expire, and nothing expires by default. The
//! value is written on the order when it is created, so changing the policy
//! later never changes what a buyer already bought.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::find_package;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditTerms {
    valid_days: BTreeMap<&'static str, i32>,
}

impl CreditTerms {
    /// Days the credits of `package_id` stay valid after the grant; `None`
    /// when they never expire.
    pub fn valid_days(&self, package_id: &str) -> Option<i32> {
        self.valid_days.get(package_id).copied()
    }
}

impl FromStr for CreditTerms {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut valid_days = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (package, days) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not <package>=<days>"))?;
            let package = find_package(package.trim())
                .ok_or_else(|| format!("{package:?} is not a package"))?;
            let days: i32 = days
                .trim()
                .parse()
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| format!("{days:?} is not a positive number of days"))?;
            if valid_days.insert(package.id, days).is_some() {
                return Err(format!("{} is named twice", package.id));
            }
        }
        Ok(Self { valid_days })
    }
}

impl fmt::Display for CreditTerms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .valid_days
            .iter()
            .map(|(package, days)| format!("{package}={days}"))
            .collect();
        f.write_str(&entries.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_packages_expire_and_others_never_do() {
        let terms: CreditTerms = "pro=365, vip = 30".parse().unwrap();
        assert_eq!(terms.valid_days("pro"), Some(365));
        assert_eq!(terms.valid_days("vip"), Some(30));
        assert_eq!(terms.valid_days("starter"), None);
        assert_eq!(terms.to_string(), "pro=365,vip=30");
        assert_eq!("".parse::<CreditTerms>().unwrap(), CreditTerms::default());
    }

    #[test]
    fn unknown_packages_and_bad_days_are_refused() {
        assert!(
            "gold=30"
                .parse::<CreditTerms>()
                .unwrap_err()
                .contains("gold")
        );
        assert!("pro=0".parse::<CreditTerms>().is_err());
        assert!("pro=-3".parse::<CreditTerms>().is_err());
        assert!("pro".parse::<CreditTerms>().is_err());
        assert!("pro=1,pro=2".parse::<CreditTerms>().is_err());
    }
}
