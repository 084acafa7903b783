import torch

from ferkit.data.augment import AugmentConfig, augment, mixup, random_affine, random_erase

NONE = AugmentConfig(flip=False, rotate_deg=0, scale=0, translate=0, erase_p=0)


def batch():
    return torch.arange(4 * 48 * 48, dtype=torch.float32).view(4, 1, 48, 48) / 1000


def test_identity_affine_keeps_the_image():
    x = batch()
    torch.testing.assert_close(random_affine(x, NONE, torch.Generator().manual_seed(0)), x, atol=1e-4, rtol=0)


def test_flip_only_mirrors():
    x = batch()
    cfg = AugmentConfig(flip=True, rotate_deg=0, scale=0, translate=0, erase_p=0)
    out = random_affine(x, cfg, torch.Generator().manual_seed(0))
    for i in range(len(x)):
        assert torch.allclose(out[i], x[i], atol=1e-4) or torch.allclose(out[i], x[i].flip(-1), atol=1e-4)
    assert not torch.allclose(out, x)  # 4 coin flips: this seed mirrors at least one


def test_erase_zeros_one_rectangle_per_image():
    x = torch.ones(64, 1, 48, 48)
    cfg = AugmentConfig(erase_p=1.0, erase_area=(0.1, 0.1))
    out = random_erase(x, cfg, torch.Generator().manual_seed(0))
    erased = (out == 0).float().mean(dim=(1, 2, 3))
    assert ((erased > 0.05) & (erased < 0.15)).all()


def test_augment_is_seeded_and_keeps_shape():
    x = batch()
    cfg = AugmentConfig()
    a = augment(x, cfg, torch.Generator().manual_seed(7))
    b = augment(x, cfg, torch.Generator().manual_seed(7))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, augment(x, cfg, torch.Generator().manual_seed(8)))


def test_mixup_blends_images_and_labels_alike():
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 2, 2).clone()
    y = torch.tensor([0, 1, 2, 3])
    mixed, target = mixup(x, y, 0.4, torch.Generator().manual_seed(3), num_classes=7)
    assert target.shape == (4, 7)
    torch.testing.assert_close(target.sum(1), torch.ones(4))
    lam = target.max(1).values
    assert (lam >= 0.5).all() and (target.argmax(1) == y).all()  # the own label stays dominant
    partner = (target * (target < lam[:, None])).argmax(1)  # the partner's class = its image value
    expected = lam * y.float() + (1 - lam) * partner.float()
    torch.testing.assert_close(mixed[:, 0, 0, 0], expected)
    again, _ = mixup(x, y, 0.4, torch.Generator().manual_seed(3), num_classes=7)
    torch.testing.assert_close(mixed, again)


def test_photo_degradations_are_seeded_per_image_and_soften_the_face():
    from ferkit.data.augment import photo_degrade

    board = ((torch.arange(48).view(48, 1) // 2 + torch.arange(48).view(1, 48) // 2) % 2).float() * 2 - 1
    x = board.expand(200, 1, 48, 48).clone()
    cfg = AugmentConfig(photo_p=0.5)
    a = photo_degrade(x, cfg, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, photo_degrade(x, cfg, torch.Generator().manual_seed(3)))
    untouched = (a == x).flatten(1).all(1)
    assert 0 < untouched.sum() < 200 * 0.2  # each of 4 degradations skipped with p 0.5: ~6% untouched
    assert torch.equal(photo_degrade(x, AugmentConfig(photo_p=0.0), torch.Generator().manual_seed(3)), x)

    def roughness(t):
        return (t[..., 1:] - t[..., :-1]).abs().mean().item()

    soft = photo_degrade(x, AugmentConfig(photo_p=1.0), torch.Generator().manual_seed(4))
    assert roughness(soft) < 0.5 * roughness(x)  # blur and downscale remove the 2-px checkerboard
    assert augment(x, AugmentConfig(photo_p=1.0), torch.Generator().manual_seed(5)).shape == x.shape
