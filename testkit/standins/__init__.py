"""Stand-ins for the services no machine here can reach, each speaking the real protocol."""
