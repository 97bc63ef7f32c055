"""Leaderboard entries on disk and the ranked table of each task version
(``entries``): read-only, every number checked, torch-free."""
