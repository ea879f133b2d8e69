"""The Wyoming TTS server: the voice table (``voices``) and the asyncio server (``server``)."""
