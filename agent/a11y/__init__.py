"""Accessibility (AT-SPI over D-Bus): the desktop's element tree, search and element actions.

``service.Accessibility`` owns the bus connections; ``walk`` builds trees from each
application's cache plus pipelined calls; ``elements`` finds and acts; ``outline`` renders the
text form. Importing this package connects to nothing.
"""
