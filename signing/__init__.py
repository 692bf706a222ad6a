"""Keys, certificates, sealed JWS documents and Merkle proofs: nocert's cryptography, free of HTTP and storage."""
