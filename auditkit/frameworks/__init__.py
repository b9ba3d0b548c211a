"""Governance frameworks as data: the NIST AI RMF Core and the EU AI Act / ISO/IEC 42001 crosswalk."""
