"""The hosted service: HTTP API, Globus Auth, results database and leaderboard."""
