//! Signatures and attestations in cosign's formats.

pub mod attach;
pub mod base64;
pub mod check;
pub mod cosign;
pub mod layout;
pub mod provenance;
pub mod signer;
