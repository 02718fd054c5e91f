"""Reading whole numbers: decoding the string readers' output strips, the metrics of
string reading, training objectives, and the path from a line image to its reading."""
