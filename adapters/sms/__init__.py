"""Message providers behind the core's ``MessageProvider`` port: SMS.ru, SMSC, SMS Aero,
Telegram (Gateway API for codes, Bot API for chats), and a console/file provider for development.
Each file speaks one provider's HTTP API and classifies its answers as accepted, retryable or
terminal; the cascade (``gateway.notify``) chooses who sends what."""
