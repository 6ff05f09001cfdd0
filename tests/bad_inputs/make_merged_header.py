"""Writes merged_header.xlsx (committed; run again only to change it): a sales sheet as finance
teams send it, a title row and a row of group headers in merged cells above the real header.

    row 1  2024年1月销售明细                         (merged A1:D1)
    row 2  客户信息 (merged A2:B2) | 交易 (merged C2:D2)
    row 3  客户ID | 姓名 | 日期 | 金额               <- the header: `header_row: 2` (0-based)
    rows 4-7  four sales, one amount as text "¥1,234.50", one blank name
"""

import datetime as dt
from pathlib import Path

from openpyxl import Workbook

book = Workbook()
sheet = book.active
sheet.title = "销售"
sheet.append(["2024年1月销售明细", None, None, None])
sheet.merge_cells("A1:D1")
sheet.append(["客户信息", None, "交易", None])
sheet.merge_cells("A2:B2")
sheet.merge_cells("C2:D2")
sheet.append(["客户ID", "姓名", "日期", "金额"])
sheet.append(["C001", "张三", dt.datetime(2024, 1, 5, 14, 22), 120.0])
sheet.append(["C002", "李四", dt.datetime(2024, 1, 6, 9, 0), "¥1,234.50"])
sheet.append([1003, None, dt.datetime(2024, 1, 7, 18, 30), 88.5])
sheet.append(["C001", "张三", dt.datetime(2024, 1, 20, 11, 5), 45])
book.save(Path(__file__).with_name("merged_header.xlsx"))
