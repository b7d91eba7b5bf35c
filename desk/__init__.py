"""The fraud-ops desk: a web app and REST API over the SQL store (queue, detail, dashboard;
claims and dispositions, which become ``analyst`` labels). ``fraudstream desk serve``."""
