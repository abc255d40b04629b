"""course_lib: the support library of the workbook "Residual networks for image
compression and restoration".

One module per course concept. Modules import only from the layers above them
in this table (tests/test_layers.py checks the graph has no cycle); each
declares its public names in ``__all__``, and each public name's docstring says
which notebook introduces it.

===============================  ==================================================
module                           concept (and the notebook that introduces it)
===============================  ==================================================
``config``                       fast mode, seeds, paths, figure style (00)
``progress``                     one progress line a saved notebook keeps (02)
``json_files``                   JSON without NaN, written atomically
``files``                        files read safely, written atomically, checksummed
``data``                         course photos, image folders, Kodak, crops (00)
``metrics``, ``rd``              PSNR, MS-SSIM, bpp (00); RD curves, BD-rate (01)
``checks``                       the exercises' self-checks (00)
``baselines``, ``plots``         JPEG, WebP, JPEG 2000, AVIF (01); figures (01)
``blocks``                       ``ResidualBlock``: y = x + F(x) (02)
``gdn``, ``quantization``        GDN / IGDN (03); rounding, noise, STE (04)
``range_coder``                  integer CDF tables, range coding (05)
``bitstream``                    the ``.rcz`` file format (05, 06)
``entropy``                      ``FactorizedPrior``: the learned prior (05)
``tiling``                       halo tiling: big images, same result (06)
``transforms``                   ``Encoder`` E, ``Decoder`` D (03, 06)
``codec``                        ``LearnedCodec``: the factorized codec (06)
``hyperprior``                   ``HyperpriorCodec``: the scale hyperprior (12)
``widening``                     a wider codec that computes the same function (Net2Net)
``registry``, ``models``         the weights manifest (no TensorFlow); load/save
``restoration``                  x~ = x^ + R(x^): restoration network (08)
``runs``, ``fitting``            run folders; the one resumable training loop
``training_setup``               a codec run's configuration, loss, first weights (no TF)
``device_training``              the same training on any Keras backend (JAX on a lent GPU)
``training``                     rate-distortion training of a codec (07)
``restoration_training``         training a restoration network (08)
``evaluate``                     RD evaluation against the classical codecs (07)
``ship``                         weights into data/weights with provenance
``complexity``                   MACs from layer shapes, TF's FLOP count (10)
``demo_codecs``, ``demo``        the slider demo's pure layer: update() (09)
``compare``, ``demo_render``     same-size comparison, wipe; pictures, plot (09)
``demo_worker``                  the newest input wins (09)
``demo_controls``, ``widgets``   the ipywidgets controls and controller (09)
``cli``                          ``python -m course_lib <subcommand>``
``train``                        ``python -m course_lib.train``, the older spelling
===============================  ==================================================

Command line: ``python -m course_lib compress|decompress|train|train-restoration|
evaluate|baselines|restore|ship`` (``--help`` on each); the older
``python -m course_lib.train``, ``.evaluate``, ``.baselines`` and
``.restoration`` still work and run the same code.

Images cross the library's boundary as ``uint8`` arrays of shape (H, W, 3) in
[0, 255] unless a docstring says otherwise.
"""

__version__ = "0.1.0"
