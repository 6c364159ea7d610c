"""CPU fast paths behind small interfaces, each tested against its readable reference."""
