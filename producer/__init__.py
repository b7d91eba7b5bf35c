"""Producer: replays ``creditcard.csv`` onto Kafka as transactions; runs the local broker."""
