"""The AWS sandbox: moto_server, seeded."""
