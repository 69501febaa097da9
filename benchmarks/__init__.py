"""Side-by-side benchmarks of this engine and llama-index-workflows (see README.md)."""
