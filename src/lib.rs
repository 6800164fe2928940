//! nodewatch: placeholder
