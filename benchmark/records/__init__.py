"""The output folder's files: the table schema (``schema``), atomic writes, the locks of the
processes sharing the folder, and one run's folder (``run_folder``)."""
