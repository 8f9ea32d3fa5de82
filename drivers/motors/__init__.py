"""Serial motor buses (Feetech, Dynamixel): control tables, encodings, normalization, drivers."""
