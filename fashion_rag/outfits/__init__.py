"""Complete the look: outfit requests planned into slots, and pieces that go together."""
