"""Item and user features: product text embeddings (MiniLM, TF-IDF fallback)."""
