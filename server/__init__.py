"""UnionHub server: app factory, configuration, models, services and the WeChat gateway."""
