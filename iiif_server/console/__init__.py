"""The staff console under /staff/: server-rendered pages for tiers, tokens and withdrawals.

Kept apart from the public server: its own session (a staff-tier token exchanged for a short,
signed cookie, or the staff network), CSRF on every form, and one audit line per action.
"""
