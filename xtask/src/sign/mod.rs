//! Signatures and attestations in cosign's formats.

pub mod base64;
pub mod cosign;
pub mod provenance;
