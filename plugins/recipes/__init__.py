"""Post-training recipes: ``sft`` (expert transcripts) and ``rl`` (PPO or GRPO on verification-revision
episodes). Registered through :mod:`harness_plugins.recipes.plugin`; torch and transformers load only when a
recipe runs."""
