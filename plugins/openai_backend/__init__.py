"""The ``openai`` backend: any OpenAI-compatible chat-completions server through the official client."""
