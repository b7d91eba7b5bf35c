"""Producer: replays ``creditcard.csv`` as a transaction stream onto Kafka; runs the local broker."""
