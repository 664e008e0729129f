//! `s3://BUCKET/PREFIX`: where a tiered store lives.

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A store's place in object storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TierUrl {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (no leading or trailing slash; may be empty).
    pub prefix: String,
}

impl TierUrl {
    /// True when `text` names object storage (and is to be parsed as a [`TierUrl`]).
    pub fn is_url(text: &str) -> bool {
        text.starts_with("s3://")
    }
}

impl FromStr for TierUrl {
    type Err = Error;

    fn from_str(text: &str) -> Result<TierUrl> {
        let bad = |why| Error::BadUrl {
            url: text.to_string(),
            why,
        };
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("it names no bucket (s3://BUCKET/PREFIX)"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(bad("the prefix has an empty, `.` or `..` element"));
        }
        Ok(TierUrl {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for TierUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TierUrl;

    #[test]
    fn parses_and_prints() {
        let u: TierUrl = "s3://b/a/b/".parse().unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("b", "a/b"));
        assert_eq!(u.to_string(), "s3://b/a/b");
        assert_eq!("s3://b".parse::<TierUrl>().unwrap().prefix, "");
        for bad in ["http://b/p", "s3:///p", "s3://b/a/../c", "s3://b/a//c"] {
            assert!(bad.parse::<TierUrl>().is_err(), "{bad}");
        }
    }
}
