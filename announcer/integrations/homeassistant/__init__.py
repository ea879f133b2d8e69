"""Home Assistant over MQTT: discovery payloads (``discovery``, pure) and the bridge (``bridge``)."""
