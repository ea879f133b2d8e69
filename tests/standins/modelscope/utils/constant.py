"""STAND-IN for ``modelscope.utils.constant`` (tests only)."""


class Tasks:
    text_to_speech = "text-to-speech"
