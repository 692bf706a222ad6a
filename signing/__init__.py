"""nocert's cryptography: keys, certificates, sealed JWS documents and Merkle proofs; no HTTP, no storage."""
