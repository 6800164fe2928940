//! nodewatch: placeholder
pub mod export;
