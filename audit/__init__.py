"""The audit: `nocert audit verify` over the whole store, evidence bundles (export, and their offline
verification). Reads the store, the views and the signing rules; writes nothing."""
