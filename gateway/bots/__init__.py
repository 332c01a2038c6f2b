"""Chat bots for customers, whatever the channel: the conversation (``conversation``:
registration, questionnaire, balance, card, history, promotions, opt-out), the chats and handled
updates (``chats``), the bot as a message channel (``delivery``) and the ``bots:`` configuration
section (``config``). The channel adapters are ``adapters/telegram_bot`` and ``adapters/vk``.

Import from the modules: ``gateway.config`` imports ``gateway.bots.config``, so this package
imports nothing at its top (the conversation needs the configuration loaded first)."""
