"""What every generator of ``gan`` shares: the adversarial Lightning base (manual optimisation of a
generator and a discriminator, the generator's EMA, channels-last, FID/KID on a schedule:
``adversarial``), the losses (``losses``), the Adam pair (``optimizers``) and the data module over
named splits with the model's [-1, 1] range (``data``)."""
