"""E-mail as a message channel: an SMTP provider behind the core's ``MessageProvider`` port."""
