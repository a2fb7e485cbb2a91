"""The styling reply: the chat model's settings and the stylist."""
