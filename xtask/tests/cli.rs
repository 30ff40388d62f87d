//! The command line as users meet it: help, unknown tasks, bump-version and its errors.
mod support;
