"""Reading files into Arrow: every format behind one interface, and the read limits."""
