"""Speakers: where rendered audio goes (sound devices, WAV files, MQTT)."""
