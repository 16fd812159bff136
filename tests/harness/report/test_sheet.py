import matplotlib.image as mpimg
import numpy as np

from harness.report.sheet import DPI, Sheet


def test_panels_do_not_overlap_and_the_figure_holds_them():
    sheet = Sheet(3, 4, title_lines=2, head_lines=1, label=True, extra_width=1.0)
    corners = [sheet.corner(r, c) for r in range(3) for c in range(4)]
    size = sheet.pitch_x - 0.25
    for i, (x0, y0) in enumerate(corners):
        assert x0 >= 0 and y0 >= 0 and x0 + size <= sheet.width and y0 + size <= sheet.height
        for x1, y1 in corners[i + 1 :]:
            assert abs(x1 - x0) >= size or abs(y1 - y0) >= size
    assert sheet.fig.get_size_inches().tolist() == [sheet.width, sheet.height]


def test_each_panel_shows_its_own_image(tmp_path):
    """Four flat grey panels at known levels: each level is in the PNG, at its panel's centre."""
    sheet = Sheet(2, 2)
    levels = np.array([[0.0, 0.25], [0.6, 1.0]])
    for r in range(2):
        for c in range(2):
            sheet.show(r, c, np.full((1, 28, 28), levels[r, c]))
    sheet.frame(0, 0, "#d62728")
    img = mpimg.imread(sheet.save(tmp_path / "s.png"))
    for r in range(2):
        for c in range(2):
            x0, y0 = sheet.corner(r, c)
            px, py = int((x0 + 0.65 + 0.1) * DPI), int((y0 + 0.65 + 0.1) * DPI)  # the centre (after 0.1 in of pad)
            assert abs(float(img[py, px, 0]) - levels[r, c]) < 0.02 and abs(float(img[py, px, 2]) - levels[r, c]) < 0.02
    red = (img[..., 0] > 0.7) & (img[..., 1] < 0.35) & (img[..., 2] < 0.35)
    assert red.sum() > 50
