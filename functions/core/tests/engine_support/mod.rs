//! The fakes live in the library (feature `testing`).
pub use eks_access_sync::testing::*;
