"""A fake GitLab REST API: CI/CD variables."""
