"""The pure model of the shop: entities, events, named errors. No I/O, no framework imports."""
