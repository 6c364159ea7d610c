"""Small helpers shared by every stage (atomic file writing, seeding, progress)."""
