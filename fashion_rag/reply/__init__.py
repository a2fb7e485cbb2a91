"""The styling reply: the stylist (the chat model's settings are fashion_rag.llm)."""
