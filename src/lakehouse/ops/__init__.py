"""Running the platform unattended: table statistics, maintenance, the scheduler,
health and alerts, metrics and logs. Above the core: it reads tables through
``Lakehouse`` and is called by the service layer."""
