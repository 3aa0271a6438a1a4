"""The DCGAN: generator and discriminator on the shared up-stack (``models``), its Lightning
module (``module``), image data (Fashion-MNIST, MNIST, any folder: ``data``), loading a trained
generator (``network_io``), ``gan sample`` (``sample``) and ``gan export`` (``deploy``)."""
