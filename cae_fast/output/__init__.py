"""What a run leaves behind: the npz, lists, csv, the report, and evaluation against labels."""
