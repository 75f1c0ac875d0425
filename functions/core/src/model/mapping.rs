//! The mapping we own and the users whose mappings must go.

use serde::{Deserialize, Serialize};

use crate::model::arn::{AccountId, RoleArn, UserArn, UserName};

/// The mapping we own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminMapping {
    /// The admin role's full ARN (with its path, as access entries want it);
    /// aws-auth gets it without the path.
    pub role_arn: RoleArn,
    pub username: String,
    pub groups: Vec<String>,
}

/// A user whose mappings must go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Offboarded {
    /// Exactly this user (ASCII case ignored).
    Arn(UserArn),
    /// Any user ARN of `account` with this name, whatever its path (case ignored);
    /// another account's user of that name is not matched.
    Name { account: AccountId, name: UserName },
}

impl Offboarded {
    /// Whether `arn` (a `userarn` value or an access-entry principal) names
    /// this user.
    pub fn matches(&self, arn: &str) -> bool {
        match self {
            Offboarded::Arn(a) => a.as_str().eq_ignore_ascii_case(arn.trim()),
            Offboarded::Name { account, name } => arn
                .trim()
                .parse::<UserArn>()
                .is_ok_and(|u| u.is_user_of(account, name)),
        }
    }
}
